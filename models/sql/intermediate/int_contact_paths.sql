-- Journeys for the data-driven (Markov) model, one row per touch of a journey:
--   converting journeys      one per won deal: the deal's touches from int_deal_touchpoints
--                            (conversion_value = the deal's revenue, conversion_margin = its gross margin)
--   non-converting journeys  one per contact with touchpoints and no won deal: the contact's touches in the
--                            `lookback_days` before its last touch (up to the end of the as_of day)
with params as (
    select
        try_cast(max(value) filter (where name = 'lookback_days') as integer) as lookback_days,
        try_cast(max(value) filter (where name = 'as_of') as date) as as_of
    from cfg_params
),

won_deals as (
    select deal_id, won_revenue, gross_margin from int_deals where is_won
),

converting as (
    select
        'deal:' || paths.deal_id as path_id,
        paths.contact_id,
        paths.deal_id,
        paths.touch_index,
        paths.touchpoint_at,
        paths.channel,
        true as is_conversion,
        won_deals.won_revenue as conversion_value,
        won_deals.gross_margin as conversion_margin
    from int_deal_touchpoints as paths
    join won_deals on won_deals.deal_id = paths.deal_id
),

contacts_with_won_deal as (
    select distinct contact_id from converting
),

open_touches as (
    select touches.*, params.lookback_days
    from int_touchpoints as touches
    cross join params
    where touches.touchpoint_at < (params.as_of + 1)::timestamptz
      and touches.contact_id not in (select contact_id from contacts_with_won_deal)
),

recent_open_touches as (
    select *
    from open_touches
    qualify touchpoint_at >= max(touchpoint_at) over (partition by contact_id) - to_days(lookback_days)
),

non_converting as (
    select
        'contact:' || contact_id as path_id,
        contact_id,
        null::bigint as deal_id,
        row_number() over (partition by contact_id order by touchpoint_at, touchpoint_id) as touch_index,
        touchpoint_at,
        channel,
        false as is_conversion,
        0::decimal(18, 2) as conversion_value,
        0::decimal(18, 2) as conversion_margin
    from recent_open_touches
),

final as (
    select * from converting
    union all
    select * from non_converting
)

select * from final
