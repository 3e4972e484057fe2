-- Last touch: the deal's latest touchpoint before conversion gets all the credit.
with touches as (
    select
        deal_id, touch_index,
        max(touch_index) over (partition by deal_id) as last_touch_index
    from int_deal_touchpoints
),

final as (
    select
        deal_id, touch_index,
        1.0::double as credit
    from touches
    where touch_index = last_touch_index
)

select * from final
