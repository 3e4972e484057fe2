-- First touch: the deal's earliest touchpoint in the lookback window gets all the credit.
with touches as (
    select deal_id, touch_index
    from int_deal_touchpoints
),

final as (
    select *, 1.0::double as credit
    from touches
    where touch_index = 1
)

select * from final
