-- Won revenue and gross margin credited over all channels (unattributed row included) equal the won deals' totals,
-- per attribution model, in each ROI mart's all-time rows. Offending rows: the mart, model and both totals.
with deals as (
    select sum(won_revenue) as won_revenue, sum(gross_margin) as gross_margin from int_deals
),

marts as (
    select 'roi_by_channel' as mart, attribution_model, sum(won_revenue) as won_revenue,
        sum(gross_margin) as gross_margin
    from roi_by_channel where month is null group by all
    union all
    select 'roi_by_source', attribution_model, sum(won_revenue), sum(gross_margin)
    from roi_by_source where month is null group by all
    union all
    select 'roi_by_campaign', attribution_model, sum(won_revenue), sum(gross_margin)
    from roi_by_campaign where month is null group by all
)

select marts.*, deals.won_revenue as deals_won_revenue, deals.gross_margin as deals_gross_margin
from marts
cross join deals
where marts.won_revenue <> coalesce(deals.won_revenue, 0)
   or marts.gross_margin <> coalesce(deals.gross_margin, 0)
