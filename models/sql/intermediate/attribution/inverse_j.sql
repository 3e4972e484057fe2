-- Inverse J: most of the credit to the first touch (60 first / 20 last / 20 middle).
-- One touch takes 100 %; two touches split 0.75 / 0.25 (first / last); from three touches on the first gets 0.6,
-- the last 0.2, and 0.2 is shared equally by the touches in between.
with touches as (
    select
        deal_id, touch_index, n_touches
    from int_deal_touchpoints
),

final as (
    select
        deal_id, touch_index,
        case
            when n_touches = 1 then 1.0
            when n_touches = 2 and touch_index = 1 then 0.75
            when n_touches = 2 then 0.25
            when touch_index = 1 then 0.6
            when touch_index = n_touches then 0.2
            else 0.2 / (n_touches - 2)
        end::double as credit
    from touches
)

select * from final
