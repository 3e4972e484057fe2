-- Full path (Z-shaped): 22.5 % each to the first touch, the lead-creation touch, the deal-creation touch and the
-- closed-won touch, 10 % shared equally by every touch that holds none of these roles.
-- Same rules as w_shaped: coinciding roles add up on one touch, missing buckets (open deals have no closed-won
-- touch) are dropped and the present ones scaled back up to 100 %, a milestone flagged on several touches is shared.
with touches as (
    select
        deal_id, touch_index,
        (touch_index = 1)::int as is_first,
        coalesce(is_lead_creation, false)::int as is_lead,
        coalesce(is_deal_creation, false)::int as is_deal,
        coalesce(is_closed_won, false)::int as is_won_touch
    from int_deal_touchpoints
),

bucket_sizes as (
    select
        *,
        (is_first + is_lead + is_deal + is_won_touch = 0)::int as is_other,
        sum(is_first) over (partition by deal_id) as n_first,
        sum(is_lead) over (partition by deal_id) as n_lead,
        sum(is_deal) over (partition by deal_id) as n_deal,
        sum(is_won_touch) over (partition by deal_id) as n_won_touch,
        sum((is_first + is_lead + is_deal + is_won_touch = 0)::int) over (partition by deal_id) as n_other
    from touches
),

raw_weights as (
    select
        *,
        0.225 * is_first / greatest(n_first, 1)
        + 0.225 * is_lead / greatest(n_lead, 1)
        + 0.225 * is_deal / greatest(n_deal, 1)
        + 0.225 * is_won_touch / greatest(n_won_touch, 1)
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
