-- Markov (data-driven): each deal's credit is split over the channels on its path in proportion to their
-- infinite-horizon removal effects (markov_removal_effects), and a channel's share is divided equally over that
-- channel's touchpoints in the deal. When no channel of the path has a positive removal effect (channels seen only in
-- journeys that never convert, or no conversion at all yet) the channels share equally, so every deal sums to 1.
-- Window functions only (no join back per deal): summing effect / touches-of-that-channel over a deal's touches
-- counts each distinct channel's effect once.
with effects as (
    select channel, greatest(coalesce(removal_effect_conversions, 0), 0) as removal_effect
    from markov_removal_effects
    where horizon = 'infinite'
),

touches as (
    select
        touches.deal_id,
        touches.touch_index,
        coalesce(effects.removal_effect, 0) as removal_effect,
        count(*) over (partition by touches.deal_id, touches.channel) as channel_touches
    from int_deal_touchpoints as touches
    left join effects on effects.channel = touches.channel
),

deal_totals as (
    select
        *,
        sum(removal_effect / channel_touches) over (partition by deal_id) as deal_effect,
        sum(1.0 / channel_touches) over (partition by deal_id) as deal_channels
    from touches
),

final as (
    select
        deal_id,
        touch_index,
        (
            case
                when deal_effect > 0 then removal_effect / deal_effect
                else 1.0 / round(deal_channels)
            end / channel_touches
        )::double as credit
    from deal_totals
)

select * from final
