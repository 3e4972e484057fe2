-- One row per deal (archived and merged-away ones left out) with its stage, its amount in the home currency, the
-- rate used, and a reject_reason for the deals the models cannot use. int_deals keeps only usable deals; the runner
-- lists the others in ops.rejects; they count nowhere (not revenue, not a won deal, not pipeline).
-- A deal without deal_currency_code is in the portal's company currency (stg_hubspot__account; the home currency
-- until the account details are read). Conversion (fx_source):
--   'home'        the deal is in the home currency: amount as it is
--   'rates_file'  the monthly rates file's rate for the month (closed deals: their close month; open deals: the
--                 as_of month, today's value of the pipeline)
--   'fx_rates'    else the fixed [models.fx_rates] rate
--   'hubspot'     else HubSpot's own amount_in_home_currency (the portal's exchange rates), which is in the
--                 company currency: times that currency's rate to the home currency (1 when they are the same)
-- amount_home = round(amount x rate, 2), half away from zero. Rejected:
--   a negative amount (a refund or credit note is not a campaign's revenue);
--   a won deal without any amount (a zero amount is a valid won deal);
--   a won or open deal whose currency has no rate for its month and no amount_in_home_currency (the reason gives
--   the exact line to add to roi.toml). A lost deal needs no conversion and is never rejected for it.
with deals as (
    select * from stg_hubspot__deals
),

stages as (
    select * from stg_hubspot__deal_stages
),

account as (
    select max(company_currency) as company_currency from stg_hubspot__account
),

params as (
    select
        upper(max(value) filter (where name = 'home_currency')) as home_currency,
        max(value) filter (where name = 'fx_rates_file') as fx_rates_file,
        try_cast(max(value) filter (where name = 'as_of') as date) as as_of
    from cfg_params
),

staged as (
    select
        deals.*,
        stages.probability,
        coalesce(stages.is_closed, deals.is_closed_flag, false) as is_closed,
        coalesce(stages.is_won, deals.is_closed_won_flag, false) as is_won,
        coalesce(nullif(deals.currency, ''), account.company_currency, params.home_currency) as amount_currency,
        coalesce(account.company_currency, params.home_currency) as company_currency,
        params.home_currency,
        params.fx_rates_file,
        params.as_of
    from deals
    cross join params
    cross join account
    left join stages on stages.stage_id = deals.stage_id and stages.pipeline_id = deals.pipeline_id
),

dated as (
    select
        *,
        date_trunc('month', case when is_closed then coalesce(closed_at, created_at) else as_of end)::date
            as fx_month
    from staged
),

rated as (
    select
        dated.*,
        case
            when dated.amount_currency = dated.home_currency then 1
            else coalesce(monthly.rate_to_home, fixed.rate_to_home)
        end as fx_rate,
        case
            when dated.company_currency = dated.home_currency then 1
            else coalesce(company_monthly.rate_to_home, company_fixed.rate_to_home)
        end as company_rate,
        case
            when dated.amount_currency = dated.home_currency then 'home'
            when monthly.rate_to_home is not null then 'rates_file'
            when fixed.rate_to_home is not null then 'fx_rates'
            when dated.amount_in_home_currency is not null then 'hubspot'
        end as fx_source
    from dated
    left join cfg_fx_monthly_rates as monthly
        on monthly.currency = dated.amount_currency and monthly.month = dated.fx_month
    left join cfg_fx_rates as fixed on fixed.currency = dated.amount_currency
    left join cfg_fx_monthly_rates as company_monthly
        on company_monthly.currency = dated.company_currency and company_monthly.month = dated.fx_month
    left join cfg_fx_rates as company_fixed on company_fixed.currency = dated.company_currency
),

converted as (
    select
        *,
        case
            when fx_source = 'hubspot' or amount is null
                then round(amount_in_home_currency::decimal(38, 2) * company_rate, 2)
            when fx_rate is not null then round(amount::decimal(38, 2) * fx_rate, 2)
        end::decimal(38, 2) as amount_home
    from rated
),

final as (
    select
        deal_id,
        deal_name,
        pipeline_id,
        stage_id,
        probability,
        is_closed,
        is_won,
        created_at,
        closed_at,
        amount_currency as currency,
        amount,
        amount_in_home_currency,
        fx_month,
        fx_rate,
        fx_source,
        amount_home,
        case
            when amount < 0 or amount_in_home_currency < 0 then 'amount'
            when is_won and amount is null and amount_in_home_currency is null then 'amount'
            when not (is_closed and not is_won) and coalesce(amount, amount_in_home_currency) is not null
                and amount_home is null
                then 'deal_currency_code'
        end as reject_field,
        case
            when amount < 0 or amount_in_home_currency < 0
                then 'negative amount ' || coalesce(amount, amount_in_home_currency)::varchar
                    || ': a refund or credit note is not revenue of a campaign; correct the original deal''s '
                    || 'amount instead (this deal counts nowhere)'
            when is_won and amount is null and amount_in_home_currency is null
                then 'won deal without amount: counted nowhere (not revenue, not a won deal); fill in the deal '
                    || 'amount (0 is a valid amount)'
            when not (is_closed and not is_won) and coalesce(amount, amount_in_home_currency) is not null
                and amount_home is null
                then roi_fx_rate_missing_reason(amount_currency, fx_month, home_currency, fx_rates_file)
        end as reject_reason
    from converted
)

select * from final
