-- ROI by portal and channel, in the group currency (portal rows only; the group's are in roi_by_channel).
with roi_rollup as (
    select * from int_group_roi_rollup
    where grain = 'channel' and portal <> 'all'
),

final as (
    select * exclude (grain, source, medium, campaign)
    from roi_rollup
)

select * from final
order by portal, attribution_model, month nulls first, channel
