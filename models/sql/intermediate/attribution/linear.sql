-- Linear: every touchpoint of the path gets the same share, 1/n (repeats of a channel are not collapsed).
with touches as (
    select
        deal_id, touch_index, n_touches
    from int_deal_touchpoints
),

final as (
    select
        deal_id, touch_index,
        1.0 / n_touches as credit
    from touches
)

select * from final
