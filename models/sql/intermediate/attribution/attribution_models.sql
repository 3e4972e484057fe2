-- The attribution models this project builds, one row each: the one list attribution_credits (unattributed rows)
-- and the ROI marts (a warehouse without deals still reports cost under every model) read.
with final as (
    select unnest([
        'first_touch', 'last_touch', 'last_non_direct', 'linear', 'time_decay', 'u_shaped', 'w_shaped',
        'full_path', 'j_shaped', 'inverse_j', 'markov'
    ]) as attribution_model
)

select * from final
