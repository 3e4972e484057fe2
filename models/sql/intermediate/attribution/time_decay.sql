-- Time decay: weight 2^(-days_before_conversion / half_life) (Google's half-life model, cfg_params
-- half_life_days, default 7), normalised to sum to 1 per deal. Exponents are taken relative to the deal's
-- closest touch so that long lookbacks or tiny half-lives never underflow every weight to zero.
with params as (
    select coalesce(
        (select try_cast(value as double) from cfg_params where name = 'half_life_days'),
        7.0
    ) as half_life_days
),

touches as (
    select
        deal_id, touch_index,
        -- A deal without a conversion date (open) has no distance to weigh: its touches count as distance 0.
        coalesce(days_before_conversion::double, 0.0) as days_before_conversion
    from int_deal_touchpoints
),

weighted as (
    select
        touches.*,
        pow(
            2.0,
            -(days_before_conversion - min(days_before_conversion) over (partition by deal_id))
            / params.half_life_days
        ) as decay_weight
    from touches
    cross join params
),

final as (
    select
        deal_id, touch_index,
        decay_weight / sum(decay_weight) over (partition by deal_id) as credit
    from weighted
)

select * from final
