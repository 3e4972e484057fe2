-- Every deal path is numbered 1..n without gaps, in time order, inside its window, with exactly one first touch
-- and a closed-won touch only on won deals.
with paths as (
    select
        deal_id,
        count(*) as touches,
        max(touch_index) as max_index,
        max(n_touches) as n_touches,
        count(*) filter (where is_first_touch) as first_touches,
        count(*) filter (where is_closed_won) as closed_won_touches,
        bool_and(is_won) as is_won,
        bool_and(touchpoint_at <= conversion_at) as inside_window,
        count(distinct touch_index) as distinct_indexes
    from int_deal_touchpoints
    group by deal_id
)

select *
from paths
where touches <> max_index or touches <> n_touches or distinct_indexes <> touches
   or first_touches <> 1
   or (not is_won and closed_won_touches > 0)
   or (is_won and closed_won_touches <> 1)
   or not inside_window
