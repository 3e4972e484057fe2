-- Cost over all channels equals the cost loaded (int_cost_daily, one winning source per campaign), per model,
-- in each mart's all-time rows, and the monthly rows add up to the all-time rows.
with loaded as (
    select coalesce(sum(cost), 0) as cost from int_cost_daily
),

marts as (
    select 'roi_by_channel' as mart, attribution_model,
        sum(cost) filter (where month is null) as all_time_cost,
        sum(cost) filter (where month is not null) as monthly_cost
    from roi_by_channel group by all
    union all
    select 'roi_by_source', attribution_model,
        sum(cost) filter (where month is null), sum(cost) filter (where month is not null)
    from roi_by_source group by all
    union all
    select 'roi_by_campaign', attribution_model,
        sum(cost) filter (where month is null), sum(cost) filter (where month is not null)
    from roi_by_campaign group by all
)

select marts.*, loaded.cost as loaded_cost
from marts
cross join loaded
where coalesce(marts.all_time_cost, 0) <> loaded.cost
   or coalesce(marts.monthly_cost, 0) <> loaded.cost
