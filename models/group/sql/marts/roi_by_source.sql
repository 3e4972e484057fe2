-- The group's ROI by source: the portals' rows summed, in the group currency, with the columns of a portal's
-- roi_by_source mart so that exports and reports read a group warehouse like a portal's.
with roi_rollup as (
    select * from int_group_roi_rollup
    where grain = 'source' and portal = 'all'
),

final as (
    select * exclude (portal, grain, medium, campaign)
    from roi_rollup
)

select * from final
order by attribution_model, month nulls first, channel, source
