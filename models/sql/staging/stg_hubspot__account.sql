-- The HubSpot portal's account details (one row once the extract has read them). Its company currency is the
-- currency of a deal without deal_currency_code and of HubSpot's own amount_in_home_currency.
with source as (
    select * from raw.hubspot_account
),

final as (
    select
        portal_id,
        nullif(upper(trim(company_currency)), '') as company_currency,
        additional_currencies,
        time_zone
    from source
)

select * from final
