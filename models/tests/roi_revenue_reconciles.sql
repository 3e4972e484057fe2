-- Revenue credited over all channels (unattributed row included) equals the won deals' total, per attribution
-- model, in each ROI mart's all-time rows; so does gross margin when every won deal's margin is known.
-- Offending rows: the mart, model and both totals.
with deals as (
    select
        sum(won_revenue) as revenue,
        sum(gross_margin) as gross_margin,
        count(*) filter (where is_won and gross_margin is null) as won_deals_without_margin
    from int_deals
),

marts as (
    select 'roi_by_channel' as mart, attribution_model, sum(revenue) as revenue,
        sum(gross_margin) as gross_margin
    from roi_by_channel where month is null group by all
    union all
    select 'roi_by_source', attribution_model, sum(revenue), sum(gross_margin)
    from roi_by_source where month is null group by all
    union all
    select 'roi_by_campaign', attribution_model, sum(revenue), sum(gross_margin)
    from roi_by_campaign where month is null group by all
)

select marts.*, deals.revenue as deals_revenue, deals.gross_margin as deals_gross_margin
from marts
cross join deals
where marts.revenue <> coalesce(deals.revenue, 0)
   or (deals.won_deals_without_margin = 0 and marts.gross_margin <> coalesce(deals.gross_margin, 0))
