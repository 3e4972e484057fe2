-- Marketing spend sheet rows: currency cleaned (empty -> the home currency), each row checked.
-- Rows that cannot be used keep a reject_reason (listed in ops.rejects by the runner). Conversion to the home
-- currency happens per month in int_spend_daily; here a row is only refused when a month of its period has no
-- rate at all (neither in the monthly rates file nor in [models.fx_rates]), with the exact line to add.
with source as (
    select * from raw.marketing_spend
),

params as (
    select
        upper(max(value) filter (where name = 'home_currency')) as home_currency,
        max(value) filter (where name = 'fx_rates_file') as fx_rates_file
    from cfg_params
),

cleaned as (
    select
        source.file_name,
        source.line,
        source.period_start,
        source.period_end,
        source.source as raw_source,
        source.medium as raw_medium,
        source.campaign as raw_campaign,
        source.amount,
        coalesce(nullif(upper(trim(source.currency)), ''), params.home_currency) as currency
    from source
    cross join params
),

months_without_rate as (
    -- the months of a (valid) period for which neither a monthly nor a fixed rate exists
    select
        cleaned.file_name,
        cleaned.line,
        min(months.month) as first_month_without_rate,
        count(*) as months_without_rate
    from cleaned
    cross join lateral (
        select unnest(generate_series(
            date_trunc('month', cleaned.period_start), cleaned.period_end, interval 1 month
        ))::date as month
    ) as months
    left join cfg_fx_monthly_rates as monthly
        on monthly.currency = cleaned.currency and monthly.month = months.month
    left join cfg_fx_rates as fixed on fixed.currency = cleaned.currency
    where cleaned.period_end >= cleaned.period_start
      and monthly.rate_to_home is null
      and fixed.rate_to_home is null
    group by all
),

final as (
    select
        cleaned.*,
        case
            when cleaned.amount is null then 'amount is missing'
            when cleaned.period_start is null or cleaned.period_end is null then 'period start or end is missing'
            when cleaned.period_end < cleaned.period_start then 'period_end is before period_start'
            when cleaned.amount < 0 then 'negative amount: book refunds in the month they are credited'
            when nullif(trim(cleaned.raw_campaign), '') is null then 'campaign is missing'
            when missing.months_without_rate > 0 then roi_fx_rate_missing_reason(
                cleaned.currency, missing.first_month_without_rate, params.home_currency, params.fx_rates_file
            )
        end as reject_reason
    from cleaned
    cross join params
    left join months_without_rate as missing on missing.file_name = cleaned.file_name and missing.line = cleaned.line
)

select * from final
