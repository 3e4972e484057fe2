-- The spend sheet spread over days, in the home currency, to the cent:
--   1. each usable row's amount (its own currency) is split evenly over the days of its period in whole cents;
--      the remainder cents go one each to the first days, so the days add up to the row exactly;
--   2. each month's part of the row converts at that month's rate (the monthly rates file, else
--      [models.fx_rates]; the home currency at 1), rounded half away from zero to the cent;
--   3. that month's home-currency cents are spread again over its days the same way.
-- So a row's home amount is the sum of its months' conversions, and every month adds up exactly.
-- (100.00 EUR over 3 days = 33.34 + 33.33 + 33.33; 10 USD at 0.92 over 31 days = 21 x 0.30 + 10 x 0.29.)
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
        (spend.amount * 100)::hugeint as total_cents,
        date_diff('day', spend.period_start, spend.period_end) + 1 as period_days,
        day_offset + 1 as day_index,
        (spend.period_start + day_offset::integer)::date as spend_date
    from spend
    cross join unnest(range(date_diff('day', spend.period_start, spend.period_end) + 1)) as offsets(day_offset)
),

spread as (
    select
        *,
        date_trunc('month', spend_date)::date as month,
        sign(total_cents) * (
            abs(total_cents) // period_days
            + case when day_index <= abs(total_cents) % period_days then 1 else 0 end
        ) as day_cents
    from days
),

months as (
    -- one row per spend row and month: its cents in the row's currency, converted at the month's rate
    select
        spread.file_name,
        spread.line,
        spread.month,
        any_value(spread.currency) as currency,
        sum(spread.day_cents) as month_cents,
        count(*) as month_days,
        any_value(coalesce(monthly.rate_to_home, fixed.rate_to_home)) as fx_rate,
        any_value(case when monthly.rate_to_home is not null then 'rates_file' else 'fx_rates' end) as fx_source
    from spread
    left join cfg_fx_monthly_rates as monthly
        on monthly.currency = spread.currency and monthly.month = spread.month
    left join cfg_fx_rates as fixed on fixed.currency = spread.currency
    group by spread.file_name, spread.line, spread.month
),

converted as (
    select
        *,
        round(month_cents::decimal(38, 0) * fx_rate, 0)::hugeint as month_home_cents
    from months
),

respread as (
    select
        spread.*,
        converted.fx_rate,
        converted.fx_source,
        converted.month_home_cents,
        row_number() over (partition by spread.file_name, spread.line, spread.month order by spread.spend_date)
            as day_of_month_part,
        converted.month_days
    from spread
    join converted
        on converted.file_name = spread.file_name
        and converted.line = spread.line
        and converted.month = spread.month
),

final as (
    select
        respread.spend_date,
        respread.file_name,
        respread.line,
        utms.channel,
        utms.source,
        utms.medium,
        utms.campaign,
        respread.currency,
        (respread.day_cents::decimal(38, 0) * 0.01)::decimal(38, 2) as amount,
        respread.fx_rate,
        respread.fx_source,
        ((sign(respread.month_home_cents) * (
            abs(respread.month_home_cents) // respread.month_days
            + case when respread.day_of_month_part <= abs(respread.month_home_cents) % respread.month_days
                then 1 else 0 end
        ))::decimal(38, 0) * 0.01)::decimal(38, 2) as amount_home,
        respread.period_start,
        respread.period_end,
        respread.period_days
    from respread
    join utms
        on utms.raw_source = coalesce(respread.raw_source, '')
        and utms.raw_medium = coalesce(respread.raw_medium, '')
        and utms.raw_campaign = coalesce(respread.raw_campaign, '')
        and utms.raw_term = ''
        and utms.raw_content = ''
)

select * from final
