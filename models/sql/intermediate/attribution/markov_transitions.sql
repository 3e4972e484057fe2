-- First-order Markov chain over journeys (converting and non-converting) from int_contact_paths.
-- States: '(start)', one per channel, and the absorbing '(conversion)' / '(null)'. Consecutive repeats of a channel
-- are collapsed (a > a > b is a > b), as in ChannelAttribution's markov_model. Every journey counts once on each of its
-- transitions; the last channel leads to '(conversion)' or '(null)'. `conversion_value` carries the summed value of the
-- conversions absorbed from a channel, giving the mean value per conversion by last channel the value model needs;
-- `longest_journey_steps` (same on every row) is the longest collapsed journey.
with touches as (
    select path_id, touch_index, channel, is_conversion, conversion_value
    from int_contact_paths
    where channel is not null
),

collapsed as (
    select *
    from touches
    qualify channel is distinct from lag(channel) over (partition by path_id order by touch_index)
),

steps as (
    select
        path_id,
        channel,
        is_conversion,
        conversion_value,
        row_number() over (partition by path_id order by touch_index) as step_index,
        lead(channel) over (partition by path_id order by touch_index) as next_channel
    from collapsed
),

longest_journey as (
    -- ChannelAttribution's default step cap is the longest collapsed journey + 1 (the finite-horizon variant).
    select coalesce(max(step_index), 0) as longest_journey_steps
    from steps
),

edges as (
    -- entering the journey
    select '(start)' as from_state, channel as to_state, 0::decimal(38, 2) as conversion_value
    from steps
    where step_index = 1
    union all
    -- moving on, or leaving at the last channel
    select
        channel as from_state,
        coalesce(next_channel, case when is_conversion then '(conversion)' else '(null)' end) as to_state,
        case when next_channel is null and is_conversion then conversion_value else 0 end as conversion_value
    from steps
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
        longest_journey.longest_journey_steps
    from counted
    cross join longest_journey
)

select * from final
