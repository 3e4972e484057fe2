-- HubSpot deals, without archived and merged-away records. Amounts stay as loaded (DECIMAL).
with source as (
    select * from raw.hubspot_deals
),

final as (
    select
        id as deal_id,
        dealname as deal_name,
        amount,
        upper(trim(deal_currency_code)) as currency,
        amount_in_home_currency,
        dealstage as stage_id,
        pipeline as pipeline_id,
        createdate as created_at,
        closedate as closed_at,
        hs_lastmodifieddate as modified_at,
        hs_is_closed_won as is_closed_won_flag,
        hs_is_closed as is_closed_flag
    from source
    where not coalesce(archived, false)
      and merged_into_id is null
)

select * from final
