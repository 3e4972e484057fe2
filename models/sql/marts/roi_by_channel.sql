-- ROI per attribution model, reporting month and channel. `month` NULL rows are all-time totals.
-- Measures, ratios and their rules live once in int_roi_rollup; this mart is its 'channel' grain with the contract's
-- columns (docs/contracts.md section 4).
with roi_rollup as (
    select * from int_roi_rollup
    where grain = 'channel'
),

final as (
    select
        attribution_model,
        month,
        channel,
        cost,
        sessions,
        leads,
        mqls,
        sqls,
        customers,
        won_deals,
        won_revenue,
        gross_margin,
        weighted_pipeline,
        roi,
        roas,
        cost_per_revenue,
        cost_per_lead,
        cac,
        lead_to_customer_rate,
        lead_value,
        roi_basis,
        cost_is_zero
    from roi_rollup
)

select * from final
order by attribution_model, month nulls first, channel
