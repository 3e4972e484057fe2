-- ROI per attribution model at the three reporting grains, each ratio computed once for the three roi_by_* marts.
--   grain 'channel'   channel
--   grain 'source'    channel x source
--   grain 'campaign'  channel x source x medium x campaign
-- Each grain has monthly rows and all-time rows (`month` NULL). Dimensions a grain does not group by are NULL; the
-- grain comes from grouping(), not from those NULLs, because source and campaign can be NULL in the data too.
-- Additive measures come from int_roi_measures (cost and sessions are the same under every model; leads ... customers
-- are contacts counted at their lead-creation touch; won_deals / won_revenue / gross_margin / weighted_pipeline are
-- the model's deal credits). Ratios on cost are NULL when cost is 0 (cost_is_zero), never an error or infinity:
--   roi = (gross_margin - cost) / cost         roas = won_revenue / cost       cost_per_revenue = cost / won_revenue
--   cost_per_lead = cost / leads               cac = cost / customers          lead_to_customer_rate = customers / leads
--   lead_value = lead_to_customer_rate x gross_margin / won_deals (the average won deal's margin)
-- roi_basis is 'revenue' when any won deal credited here has no margin (no line-item costs and no margin rate).
with measures as (
    select * from int_roi_measures
),

totals as (
    select
        case
            when grouping(source) = 1 then 'channel'
            when grouping(campaign) = 1 then 'source'
            else 'campaign'
        end as grain,
        attribution_model,
        month,
        channel,
        source,
        medium,
        campaign,
        coalesce(sum(cost), 0)::decimal(18, 2) as cost,
        coalesce(sum(sessions), 0)::bigint as sessions,
        coalesce(sum(leads), 0)::bigint as leads,
        coalesce(sum(mqls), 0)::bigint as mqls,
        coalesce(sum(sqls), 0)::bigint as sqls,
        coalesce(sum(customers), 0)::bigint as customers,
        coalesce(sum(won_deals), 0)::double as won_deals,
        coalesce(sum(won_revenue), 0)::decimal(18, 2) as won_revenue,
        coalesce(sum(gross_margin), 0)::decimal(18, 2) as gross_margin,
        round(coalesce(sum(weighted_pipeline), 0), 2)::decimal(18, 2) as weighted_pipeline,
        coalesce(sum(revenue_basis_won_deals), 0) as revenue_basis_won_deals
    from measures
    group by grouping sets (
        (attribution_model, month, channel),
        (attribution_model, channel),
        (attribution_model, month, channel, source),
        (attribution_model, channel, source),
        (attribution_model, month, channel, source, medium, campaign),
        (attribution_model, channel, source, medium, campaign)
    )
),

final as (
    -- revenue_basis_won_deals only decides roi_basis
    select
        * exclude (revenue_basis_won_deals),
        case when cost <> 0 then round((gross_margin - cost) / cost, 6) end::decimal(18, 6) as roi,
        case when cost <> 0 then round(won_revenue / cost, 6) end::decimal(18, 6) as roas,
        case when cost <> 0 and won_revenue <> 0 then round(cost / won_revenue, 6) end::decimal(18, 6)
            as cost_per_revenue,
        case when cost <> 0 then roi_div_money(cost, leads) end as cost_per_lead,
        case when cost <> 0 then roi_div_money(cost, customers) end as cac,
        case when leads > 0 then round(customers / leads, 6) end::decimal(18, 6) as lead_to_customer_rate,
        case when leads > 0 and won_deals > 0 then round(customers / leads * gross_margin / won_deals, 2) end
            ::decimal(18, 2) as lead_value,
        case when revenue_basis_won_deals > 0 then 'revenue' else 'margin' end as roi_basis,
        cost = 0 as cost_is_zero
    from totals
)

select * from final
