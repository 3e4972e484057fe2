-- ROI per attribution model, reporting month and channel and source. `month` NULL rows are all-time totals.
-- Measures, ratios and their rules live once in int_roi_rollup; this mart is its 'source' grain. The columns
-- (docs/contracts.md section 4) are the rollup's, in its order, minus the dimensions this grain does not group by.
with roi_rollup as (
    select * from int_roi_rollup
    where grain = 'source'
),

final as (
    select * exclude (grain, medium, campaign)
    from roi_rollup
)

select * from final
order by attribution_model, month nulls first, channel, source
