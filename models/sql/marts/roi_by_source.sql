-- ROI per attribution model, reporting month and channel and source. `month` NULL rows are all-time totals.
-- Measures, ratios and their rules live once in int_roi_rollup; this mart is its 'source' grain with the contract's
-- columns (docs/contracts.md section 4).
with roi_rollup as (
    select * from int_roi_rollup
    where grain = 'source'
),

final as (
    select
        attribution_model,
        month,
        channel,
        source,
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
order by attribution_model, month nulls first, channel, source
