-- Markov (data-driven): each deal's credit is split over the channels on its path in proportion to their
-- infinite-horizon removal effects (markov_removal_effects), and a channel's share is divided equally over that
-- channel's touchpoints in the deal. When no channel of the path has a positive removal effect (channels seen only in
-- journeys that never convert, or no conversion at all yet) the channels share equally, so every deal sums to 1.
with touches as (
    select deal_id, contact_id, touchpoint_id, touch_index, touchpoint_at, channel, source, medium, campaign
    from int_deal_touchpoints
),

effects as (
    select channel, greatest(coalesce(removal_effect_conversions, 0), 0) as removal_effect
    from markov_removal_effects
    where horizon = 'infinite'
),

deal_channels as (
    select touches.deal_id, touches.channel, count(*) as channel_touches, any_value(effects.removal_effect) as effect
    from touches
    left join effects on effects.channel = touches.channel
    group by touches.deal_id, touches.channel
),

channel_shares as (
    select
        deal_id,
        channel,
        channel_touches,
        case
            when sum(coalesce(effect, 0)) over (partition by deal_id) > 0
                then coalesce(effect, 0) / sum(coalesce(effect, 0)) over (partition by deal_id)
            else 1.0 / count(*) over (partition by deal_id)
        end as channel_share
    from deal_channels
),

final as (
    select
        touches.deal_id, touches.contact_id, touches.touchpoint_id, touches.touch_index, touches.touchpoint_at,
        touches.channel, touches.source, touches.medium, touches.campaign,
        (channel_shares.channel_share / channel_shares.channel_touches)::double as credit
    from touches
    join channel_shares
        on channel_shares.deal_id = touches.deal_id
        and channel_shares.channel is not distinct from touches.channel
)

select * from final
