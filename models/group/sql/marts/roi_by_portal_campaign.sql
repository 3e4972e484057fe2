-- ROI by portal and campaign, in the group currency (portal rows only; the group's are in roi_by_campaign).
with roi_rollup as (
    select * from int_group_roi_rollup
    where grain = 'campaign' and portal <> 'all'
),

final as (
    select * exclude (grain)
    from roi_rollup
)

select * from final
order by portal, attribution_model, month nulls first, channel, source, medium, campaign
