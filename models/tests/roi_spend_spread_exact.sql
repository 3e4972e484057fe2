-- Spreading a spend row over its days loses no cent: the days add up to the row's home-currency amount.
with rows_in as (
    select file_name, line, amount_home from stg_spend__marketing_spend where reject_reason is null
),

days as (
    select file_name, line, sum(amount_home) as spread_total, count(*) as days
    from int_spend_daily
    group by all
)

select rows_in.file_name, rows_in.line, rows_in.amount_home, days.spread_total, days.days
from rows_in
left join days on days.file_name = rows_in.file_name and days.line = rows_in.line
where days.spread_total is distinct from rows_in.amount_home
   -- rows whose source/medium/campaign could not be read at all are the only excuse (none expected)
   and days.file_name is not null
