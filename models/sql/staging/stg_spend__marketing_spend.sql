-- Marketing spend sheet rows: currency cleaned, amount converted to the home currency with cfg_fx_rates.
-- Rows that cannot be used keep a reject_reason (listed in ops.rejects by the runner) and no amount_home.
with source as (
    select * from raw.marketing_spend
),

home as (
    select upper(value) as home_currency from cfg_params where name = 'home_currency'
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
        coalesce(nullif(upper(trim(source.currency)), ''), home.home_currency) as currency
    from source
    cross join home
),

final as (
    select
        cleaned.*,
        round(cleaned.amount * fx.rate_to_home, 2)::decimal(18, 2) as amount_home,
        case
            when cleaned.amount is null then 'amount is missing'
            when cleaned.period_start is null or cleaned.period_end is null then 'period start or end is missing'
            when cleaned.period_end < cleaned.period_start then 'period_end is before period_start'
            when cleaned.amount < 0 then 'negative amount: book refunds in the month they are credited'
            when nullif(trim(cleaned.raw_campaign), '') is null then 'campaign is missing'
            when fx.rate_to_home is null
                then 'no exchange rate for ' || cleaned.currency || ': add it under fx_rates in the [models] settings'
        end as reject_reason
    from cleaned
    left join cfg_fx_rates as fx on fx.currency = cleaned.currency
)

select * from final
