-- The spend sheet spread over days: each usable row's home-currency amount is split evenly over the days of its
-- period in whole cents; the remainder cents go one each to the first days, so the days add up to the row exactly.
with spend as (
    select * from stg_spend__marketing_spend where reject_reason is null
),

utms as (
    select * from int_utm_normalised
),

days as (
    select
        spend.file_name,
        spend.line,
        spend.period_start,
        spend.period_end,
        spend.raw_source,
        spend.raw_medium,
        spend.raw_campaign,
        spend.currency,
        spend.amount,
        spend.amount_home,
        date_diff('day', spend.period_start, spend.period_end) + 1 as period_days,
        day_offset + 1 as day_index,
        (spend.period_start + day_offset::integer)::date as spend_date
    from spend
    cross join unnest(range(date_diff('day', spend.period_start, spend.period_end) + 1)) as offsets(day_offset)
),

cents as (
    select
        *,
        (amount_home * 100)::bigint as total_cents
    from days
),

spread as (
    select
        *,
        sign(total_cents) * (
            abs(total_cents) // period_days
            + case when day_index <= abs(total_cents) % period_days then 1 else 0 end
        ) as day_cents
    from cents
),

final as (
    select
        spread.spend_date,
        spread.file_name,
        spread.line,
        utms.channel,
        utms.source,
        utms.medium,
        utms.campaign,
        spread.currency,
        (spread.day_cents::decimal(18, 0) * 0.01)::decimal(18, 2) as amount_home,
        spread.period_start,
        spread.period_end,
        spread.period_days
    from spread
    join utms
        on utms.raw_source = coalesce(spread.raw_source, '')
        and utms.raw_medium = coalesce(spread.raw_medium, '')
        and utms.raw_campaign = coalesce(spread.raw_campaign, '')
        and utms.raw_term = ''
        and utms.raw_content = ''
)

select * from final
