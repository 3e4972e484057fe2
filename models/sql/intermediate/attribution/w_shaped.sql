-- W-shaped: 30 % to the first touch, 30 % to the lead-creation touch, 30 % to the deal-creation touch and 10 %
-- shared equally by every touch that holds none of these roles.
-- A touch holding several roles sums them (first touch = lead creation -> 60 %). A bucket with no touch (no lead
-- creation flagged, or no "other" touches) is dropped and the present buckets are scaled back up to 100 %.
-- Should a milestone be flagged on several touches, its bucket is shared equally by them.
with touches as (
    select
        deal_id, touch_index,
        (touch_index = 1)::int as is_first,
        coalesce(is_lead_creation, false)::int as is_lead,
        coalesce(is_deal_creation, false)::int as is_deal
    from int_deal_touchpoints
),

bucket_sizes as (
    select
        *,
        (is_first + is_lead + is_deal = 0)::int as is_other,
        sum(is_first) over (partition by deal_id) as n_first,
        sum(is_lead) over (partition by deal_id) as n_lead,
        sum(is_deal) over (partition by deal_id) as n_deal,
        sum((is_first + is_lead + is_deal = 0)::int) over (partition by deal_id) as n_other
    from touches
),

raw_weights as (
    select
        *,
        0.3 * is_first / greatest(n_first, 1)
        + 0.3 * is_lead / greatest(n_lead, 1)
        + 0.3 * is_deal / greatest(n_deal, 1)
        + 0.1 * is_other / greatest(n_other, 1) as raw_weight
    from bucket_sizes
),

final as (
    select
        deal_id, touch_index,
        (raw_weight / sum(raw_weight) over (partition by deal_id))::double as credit
    from raw_weights
)

select * from final
