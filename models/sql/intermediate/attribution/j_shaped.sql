-- J-shaped: most of the credit to the last touch (20 first / 60 last / 20 middle).
-- One touch takes 100 %; two touches split 0.25 / 0.75 (first / last); from three touches on the first gets 0.2,
-- the last 0.6, and 0.2 is shared equally by the touches in between.
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
            when n_touches = 2 and touch_index = 1 then 0.25
            when n_touches = 2 then 0.75
            when touch_index = 1 then 0.2
            when touch_index = n_touches then 0.6
            else 0.2 / (n_touches - 2)
        end::double as credit
    from touches
)

select * from final
