-- ROI by portal and source, in the group currency (portal rows only; the group's are in roi_by_source).
with roi_rollup as (
    select * from int_group_roi_rollup
    where grain = 'source' and portal <> 'all'
),

final as (
    select * exclude (grain, medium, campaign)
    from roi_rollup
)

select * from final
order by portal, attribution_model, month nulls first, channel, source
