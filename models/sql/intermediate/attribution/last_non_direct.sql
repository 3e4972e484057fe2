-- Last non-direct touch (Google's "last non-direct click"): all the credit to the latest touchpoint whose channel is
-- not `direct`; a path made only of direct visits keeps its last touch, so every deal is credited once.
with touches as (
    select
        deal_id, touch_index, channel,
        max(touch_index) over (partition by deal_id) as last_touch_index,
        max(touch_index) filter (where channel is distinct from 'direct') over (partition by deal_id)
            as last_non_direct_index
    from int_deal_touchpoints
),

final as (
    select
        deal_id, touch_index,
        1.0::double as credit
    from touches
    where touch_index = coalesce(last_non_direct_index, last_touch_index)
)

select * from final
