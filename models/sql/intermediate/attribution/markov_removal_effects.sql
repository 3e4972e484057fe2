-- Removal effects of the first-order absorbing Markov chain in markov_transitions, computed exactly (no simulation).
--   P(conv)          = probability that a journey from '(start)' is absorbed in '(conversion)'
--   P_-k(conv)       = the same with channel k removed (every move into k goes to '(null)')
--   RE_k             = 1 - P_-k(conv) / P(conv)
--   E[value], RE^v_k = the same with the value each absorption brings (mean conversion value of the last channel)
-- Attributed conversions / value share the observed totals in proportion to RE_k / RE^v_k.
-- Two horizons:
--   'infinite'   the chain itself: Q^0 + Q^1 + ... summed by repeated squaring (up to 2^62 steps, until Q^(2^k) has
--                drained below 1e-40), so loops converge whatever their length;
--   'ca_default' at most (longest collapsed journey + 1) channel visits, what ChannelAttribution's markov_model does
--                by default, by plain value iteration.
-- The chain has one state per channel (about ten), so this works on a few hundred rows whatever the data volume.
with recursive

transitions as (
    select from_state, to_state, journeys, conversion_value, probability::double as probability
    from markov_transitions
),

horizon as (
    select coalesce(max(longest_journey_steps), 0) + 1 as steps
    from markov_transitions
),

channels as (
    select distinct from_state as channel
    from transitions
    where from_state <> '(start)'
),

scenarios as (
    -- '(none)': the full chain; otherwise the chain with that channel removed
    select '(none)' as removed_channel
    union all
    select channel from channels
),

transient_moves as (
    -- Q: moves between transient states, minus those touching the removed channel
    select scenarios.removed_channel, transitions.from_state, transitions.to_state, transitions.probability
    from scenarios
    join transitions
        on transitions.to_state not in ('(conversion)', '(null)')
        and transitions.from_state <> scenarios.removed_channel
        and transitions.to_state <> scenarios.removed_channel
),

rewards as (
    -- one-step absorption into '(conversion)' and the value it brings (mean value per conversion of that channel)
    select
        scenarios.removed_channel,
        transitions.from_state as state,
        transitions.probability as conversion_reward,
        transitions.probability * (transitions.conversion_value / transitions.journeys)::double as value_reward
    from scenarios
    join transitions
        on transitions.to_state = '(conversion)'
        and transitions.from_state <> scenarios.removed_channel
),

powers(k, removed_channel, from_state, to_state, probability) as (
    -- Q^(2^k); entries below 1e-40 are dropped, so the squaring stops by itself once the chain has drained
    select 0, removed_channel, from_state, to_state, probability
    from transient_moves
    union all
    select left_power.k + 1, left_power.removed_channel, left_power.from_state, right_power.to_state,
        sum(left_power.probability * right_power.probability)
    from powers as left_power
    join powers as right_power
        on right_power.k = left_power.k
        and right_power.removed_channel = left_power.removed_channel
        and right_power.from_state = left_power.to_state
    where left_power.k < 62
    group by left_power.k, left_power.removed_channel, left_power.from_state, right_power.to_state
    having sum(left_power.probability * right_power.probability) > 1e-40
),

squarings as (
    -- rounds of doubling needed: one past the last power that still has an entry
    select coalesce(max(k) + 1, 0) as rounds
    from powers
),

infinite_sums(k, removed_channel, state, conversions, conversion_value) as (
    -- S_k = (Q^0 + ... + Q^(2^k - 1)) r, doubled each round: S_(k+1) = S_k + Q^(2^k) S_k
    select 0, removed_channel, state, conversion_reward, value_reward
    from rewards
    union all
    select terms.k + 1, terms.removed_channel, terms.state, sum(terms.conversions), sum(terms.conversion_value)
    from (
        select k, removed_channel, state, conversions, conversion_value
        from infinite_sums
        union all
        select sums.k, sums.removed_channel, powers.from_state,
            powers.probability * sums.conversions, powers.probability * sums.conversion_value
        from infinite_sums as sums
        join powers
            on powers.k = sums.k
            and powers.removed_channel = sums.removed_channel
            and powers.to_state = sums.state
    ) as terms
    where terms.k < (select rounds from squarings)
    group by terms.k, terms.removed_channel, terms.state
),

finite_sums(step, removed_channel, state, conversions, conversion_value) as (
    -- f_t = r + Q f_(t-1): absorbed within t + 1 channel visits
    select 0, removed_channel, state, conversion_reward, value_reward
    from rewards
    union all
    select terms.step + 1, terms.removed_channel, terms.state, sum(terms.conversions), sum(terms.conversion_value)
    from (
        select sums.step, moves.removed_channel, moves.from_state as state,
            moves.probability * sums.conversions as conversions,
            moves.probability * sums.conversion_value as conversion_value
        from finite_sums as sums
        join transient_moves as moves
            on moves.removed_channel = sums.removed_channel
            and moves.to_state = sums.state
        union all
        select previous.step, rewards.removed_channel, rewards.state, rewards.conversion_reward, rewards.value_reward
        from rewards
        cross join (select distinct step from finite_sums) as previous
    ) as terms
    where terms.step < (select steps from horizon)
    group by terms.step, terms.removed_channel, terms.state
),

scenario_outcomes as (
    -- value at '(start)' after the last round; a scenario that never reaches a conversion has no row -> 0
    select
        'infinite' as horizon,
        null::integer as horizon_steps,
        scenarios.removed_channel,
        coalesce(sums.conversions, 0) as p_conversion,
        coalesce(sums.conversion_value, 0) as expected_value
    from scenarios
    cross join squarings
    left join infinite_sums as sums
        on sums.removed_channel = scenarios.removed_channel
        and sums.state = '(start)'
        and sums.k = squarings.rounds
    union all
    select
        'ca_default',
        horizon.steps,
        scenarios.removed_channel,
        coalesce(sums.conversions, 0),
        coalesce(sums.conversion_value, 0)
    from scenarios
    cross join horizon
    left join finite_sums as sums
        on sums.removed_channel = scenarios.removed_channel
        and sums.state = '(start)'
        and sums.step = horizon.steps
),

observed_totals as (
    select
        coalesce(sum(journeys), 0) as total_conversions,
        coalesce(sum(conversion_value), 0)::double as total_conversion_value
    from transitions
    where to_state = '(conversion)'
),

removal_effects as (
    select
        removed.horizon,
        removed.horizon_steps,
        removed.removed_channel as channel,
        full_chain.p_conversion,
        1 - removed.p_conversion / nullif(full_chain.p_conversion, 0) as removal_effect_conversions,
        1 - removed.expected_value / nullif(full_chain.expected_value, 0) as removal_effect_value
    from scenario_outcomes as removed
    join scenario_outcomes as full_chain
        on full_chain.horizon = removed.horizon
        and full_chain.removed_channel = '(none)'
    where removed.removed_channel <> '(none)'
),

final as (
    select
        removal_effects.horizon,
        removal_effects.horizon_steps,
        removal_effects.channel,
        removal_effects.p_conversion,
        removal_effects.removal_effect_conversions,
        removal_effects.removal_effect_value,
        removal_effects.removal_effect_conversions
            / nullif(sum(removal_effects.removal_effect_conversions) over (partition by removal_effects.horizon), 0)
            * observed_totals.total_conversions as attributed_conversions,
        removal_effects.removal_effect_value
            / nullif(sum(removal_effects.removal_effect_value) over (partition by removal_effects.horizon), 0)
            * observed_totals.total_conversion_value as attributed_value
    from removal_effects
    cross join observed_totals
)

select * from final
