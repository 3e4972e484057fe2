-- Spreading a spend row over its days loses no cent: per row, the days add up to the row's amount in its own
-- currency; per row and month, the days' home-currency amounts add up to that month's part converted once at the
-- month's rate (half away from zero). Offending rows: the row, month and both sides.
with rows_in as (
    select file_name, line, amount from stg_spend__marketing_spend where reject_reason is null
),

by_row as (
    select file_name, line, sum(amount) as spread_amount, count(*) as days
    from int_spend_daily
    group by all
),

by_month as (
    select
        file_name, line, date_trunc('month', spend_date) as month,
        sum(amount) as month_amount, any_value(fx_rate) as fx_rate, sum(amount_home) as month_amount_home
    from int_spend_daily
    group by all
)

select rows_in.file_name, rows_in.line, null as month, rows_in.amount as expected, by_row.spread_amount as actual
from rows_in
left join by_row on by_row.file_name = rows_in.file_name and by_row.line = rows_in.line
where by_row.spread_amount is distinct from rows_in.amount
   -- rows whose source/medium/campaign could not be read at all are the only excuse (none expected)
   and by_row.file_name is not null
union all
select file_name, line, month, round(month_amount * fx_rate, 2), month_amount_home
from by_month
where month_amount_home <> round(month_amount * fx_rate, 2)
