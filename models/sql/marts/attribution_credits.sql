-- Every deal (won, open and lost) under every attribution model: one row per credited touchpoint, credits summing
-- to 1 per deal and model. Deals without any touchpoint in the lookback window get one 'unattributed' row (credit 1)
-- so that no revenue or pipeline disappears from the ROI marts.
-- Money stays exact for amounts up to 10^12 EUR (and far beyond): revenue = credit x won revenue and gross_margin =
-- credit x gross margin are computed in whole cents on integers (never DOUBLE money), rounded half away from zero,
-- and the rounding remainder goes to the deal's largest credit, so per deal and model the rows add up to the deal's
-- amounts to the cent. A deal whose margin is unknown (int_deals.margin_source = 'none') keeps
-- a NULL gross_margin on every row: it is never guessed.
with model_credits as (
    -- every model yields (deal_id, touch_index, credit)
    select 'first_touch' as attribution_model, * from first_touch
    union all by name
    select 'last_touch' as attribution_model, * from last_touch
    union all by name
    select 'last_non_direct' as attribution_model, * from last_non_direct
    union all by name
    select 'linear' as attribution_model, * from linear
    union all by name
    select 'time_decay' as attribution_model, * from time_decay
    union all by name
    select 'u_shaped' as attribution_model, * from u_shaped
    union all by name
    select 'w_shaped' as attribution_model, * from w_shaped
    union all by name
    select 'full_path' as attribution_model, * from full_path
    union all by name
    select 'j_shaped' as attribution_model, * from j_shaped
    union all by name
    select 'inverse_j' as attribution_model, * from inverse_j
    union all by name
    select 'markov' as attribution_model, * from markov
),

deals as (
    select deal_id, won_revenue, gross_margin, primary_contact_id
    from int_deals
),

unattributed as (
    select
        attribution_models.attribution_model,
        deals.deal_id,
        null::bigint as touch_index,
        1.0::double as credit,
        deals.primary_contact_id
    from deals
    cross join attribution_models
    where not exists (select 1 from int_deal_touchpoints as touches where touches.deal_id = deals.deal_id)
),

credits as (
    select * from model_credits
    union all by name
    select * from unattributed
),

scaled as (
    select
        credits.attribution_model,
        credits.deal_id,
        credits.touch_index,
        credits.credit,
        credits.primary_contact_id,
        (deals.won_revenue * 100)::bigint as revenue_total_cents,
        (deals.gross_margin * 100)::bigint as gross_margin_total_cents
    from credits
    join deals on deals.deal_id = credits.deal_id
),

rounded as (
    -- cents x credit, rounded half away from zero, in whole cents. Below 90,000.00 the product fits a BIGINT with
    -- the credit to 12 decimals (error < 10^-5 cent); above, HUGEINTs with the credit to 18 decimals (the 128-bit
    -- arithmetic costs twice the CPU, so only the rare large amounts pay for it).
    select
        *,
        case
            when abs(revenue_total_cents) < 9000000 then
                sign(revenue_total_cents) * ((abs(revenue_total_cents) * round(credit * 1e12)::bigint
                    + 500000000000) // 1000000000000)
            else (sign(revenue_total_cents) * ((abs(revenue_total_cents) * round(credit * 1e18)::hugeint
                + 500000000000000000) // 1000000000000000000))::bigint
        end as revenue_cents,
        case
            when abs(gross_margin_total_cents) < 9000000 then
                sign(gross_margin_total_cents) * ((abs(gross_margin_total_cents) * round(credit * 1e12)::bigint
                    + 500000000000) // 1000000000000)
            else (sign(gross_margin_total_cents) * ((abs(gross_margin_total_cents) * round(credit * 1e18)::hugeint
                + 500000000000000000) // 1000000000000000000))::bigint
        end as gross_margin_cents
    from scaled
),

deal_totals as (
    -- per deal and model: the cents handed out so far and the touch that takes the remainder (the largest credit,
    -- ties to the earliest touch; a struct compares field by field)
    select
        attribution_model,
        deal_id,
        any_value(revenue_total_cents) - sum(revenue_cents)::bigint as revenue_remainder,
        any_value(gross_margin_total_cents) - sum(gross_margin_cents)::bigint as gross_margin_remainder,
        arg_max(coalesce(touch_index, 0), {'credit': credit, 'earliest': -coalesce(touch_index, 0)})
            as remainder_touch_index
    from rounded
    group by attribution_model, deal_id
),

remainders as (
    select
        rounded.attribution_model,
        rounded.deal_id,
        rounded.touch_index,
        rounded.credit,
        rounded.primary_contact_id,
        rounded.revenue_cents + case
            when coalesce(rounded.touch_index, 0) = deal_totals.remainder_touch_index
                then deal_totals.revenue_remainder
            else 0
        end as revenue_cents,
        rounded.gross_margin_cents + case
            when coalesce(rounded.touch_index, 0) = deal_totals.remainder_touch_index
                then deal_totals.gross_margin_remainder
            else 0
        end as gross_margin_cents
    from rounded
    join deal_totals
        on deal_totals.attribution_model = rounded.attribution_model
        and deal_totals.deal_id = rounded.deal_id
),

final as (
    -- the models carry only (deal_id, touch_index, credit); the touch's attributes are joined once, here
    select
        remainders.attribution_model,
        remainders.deal_id,
        -- an unattributed deal keeps its primary contact
        coalesce(touches.contact_id, remainders.primary_contact_id) as contact_id,
        touches.touchpoint_at,
        case when remainders.touch_index is null then 'unattributed' else touches.channel end as channel,
        touches.source,
        touches.medium,
        touches.campaign,
        remainders.credit,
        (remainders.revenue_cents::decimal(38, 0) * 0.01)::decimal(38, 2) as revenue,
        (remainders.gross_margin_cents::decimal(38, 0) * 0.01)::decimal(38, 2) as gross_margin
    from remainders
    left join int_deal_touchpoints as touches
        on touches.deal_id = remainders.deal_id
        and touches.touch_index = remainders.touch_index
)

select * from final
