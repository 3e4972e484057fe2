-- The group rows equal the sum of the portal rows, measure by measure, for every grain, model, month and dimension.
with portals as (
    select grain, attribution_model, month, channel, source, medium, campaign,
        sum(cost) as cost, sum(revenue) as revenue, sum(weighted_pipeline) as weighted_pipeline,
        sum(sessions) as sessions, sum(leads) as leads, sum(customers) as customers, sum(won_deals) as won_deals,
        case when count(*) = count(gross_margin) then sum(gross_margin) end as gross_margin
    from int_group_roi_rollup where portal <> 'all'
    group by all
),

totals as (
    select * from int_group_roi_rollup where portal = 'all'
)

select totals.grain, totals.attribution_model, totals.month, totals.channel, totals.source, totals.medium,
    totals.campaign
from totals
full join portals
    on portals.grain = totals.grain and portals.attribution_model = totals.attribution_model
    and portals.month is not distinct from totals.month
    and portals.channel is not distinct from totals.channel and portals.source is not distinct from totals.source
    and portals.medium is not distinct from totals.medium and portals.campaign is not distinct from totals.campaign
where totals.grain is null or portals.grain is null
    or totals.cost <> portals.cost or totals.revenue <> portals.revenue
    or totals.weighted_pipeline <> portals.weighted_pipeline or totals.sessions <> portals.sessions
    or totals.leads <> portals.leads or totals.customers <> portals.customers
    or abs(totals.won_deals - portals.won_deals) > 1e-9
    or totals.gross_margin is distinct from portals.gross_margin
