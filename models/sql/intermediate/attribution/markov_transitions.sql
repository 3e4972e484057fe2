-- First-order Markov chain over journeys (converting and non-converting) from int_contact_paths.
-- States: '(start)', one per channel, and the absorbing '(conversion)' / '(null)'. Consecutive repeats of a channel
-- are collapsed (a > a > b is a > b), as in ChannelAttribution's markov_model: the collapsed moves are exactly the
-- pairs of consecutive touches whose channels differ, so one window pass over the touches finds them all. Every
-- journey counts once on each of its moves; its last channel leads to '(conversion)' or '(null)'.
-- `conversion_value` carries the summed value of the conversions absorbed from a channel (the mean value per
-- conversion by last channel, which the value model needs); `longest_journey_steps` (same on every row) is the
-- longest collapsed journey.
with touches as (
    select
        path_id,
        channel,
        is_conversion,
        conversion_value,
        lag(channel) over journey as previous_channel,
        lead(channel) over journey as next_channel,
        row_number() over journey as step_index
    from int_contact_paths
    where channel is not null
    window journey as (partition by path_id order by touch_index)
),

edges as (
    -- entering the journey
    select '(start)' as from_state, channel as to_state, 0::decimal(38, 2) as conversion_value
    from touches
    where step_index = 1
    union all
    -- moving on to another channel
    select channel, next_channel, 0
    from touches
    where next_channel is distinct from channel and next_channel is not null
    union all
    -- leaving at the last channel
    select channel, case when is_conversion then '(conversion)' else '(null)' end,
        case when is_conversion then conversion_value else 0 end
    from touches
    where next_channel is null
),

journey_lengths as (
    -- ChannelAttribution's default step cap is the longest collapsed journey + 1 (the finite-horizon variant)
    select count(*) filter (where channel is distinct from previous_channel) as steps
    from touches
    group by path_id
),

counted as (
    select from_state, to_state, count(*) as journeys, sum(conversion_value) as conversion_value
    from edges
    group by from_state, to_state
),

final as (
    select
        from_state,
        to_state,
        journeys,
        conversion_value,
        journeys / sum(journeys) over (partition by from_state) as probability,
        (select coalesce(max(steps), 0) from journey_lengths) as longest_journey_steps
    from counted
)

select * from final
