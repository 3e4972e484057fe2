-- ROI per attribution model at the three reporting grains, each ratio computed once for the three roi_by_* marts.
--   grain 'channel'   channel
--   grain 'source'    channel x source
--   grain 'campaign'  channel x source x medium x campaign
-- Each grain has monthly rows and all-time rows (`month` NULL). Dimensions a grain does not group by are NULL; the
-- grain comes from grouping(), not from those NULLs, because source and campaign can be NULL in the data too.
-- Additive measures come from int_roi_measures (cost and sessions are the same under every model; leads ... customers
-- are contacts counted at their lead-creation touch; won_deals / revenue / gross_margin / weighted_pipeline are the
-- model's deal credits). Money is DECIMAL(38, 2); ratios are DECIMAL(38, 6), divided exactly (half away from zero)
-- so that amounts up to 10^12 EUR against a cost of 0.01 EUR still fit. The formulas are the roi_* macros of
-- models/runner.py, shared with the group's rollup.
-- Both ROI bases, side by side (the first uses revenue, "CA"; the second the gross margin):
--   roi_on_revenue = (revenue - cost) / cost       roi_on_margin = (gross_margin - cost) / cost
--   roas = revenue / cost                          cost_per_euro_of_revenue = cost / revenue
--   cost_per_lead = cost / leads                   cac = cost / customers      lead_to_customer_rate = customers / leads
--   lead_value = lead_to_customer_rate x gross_margin / won_deals (the average won deal's margin)
-- Ratios on cost are NULL when cost is 0 (cost_is_zero), never an error or infinity.
-- gross_margin is NULL when a won deal credited in the row has no margin information (no line-item cost of goods and
-- no configured margin rate for its pipeline): a partial sum would understate the margin, and a margin is never
-- guessed. roi_on_margin and lead_value are NULL with it. margin_source says where the row's margin comes from:
--   'line_items'   every won deal credited here has hs_cost_of_goods_sold on all its line items
--   'margin_rate'  every one has a configured margin rate (its pipeline's, or an explicit default_margin_rate)
--   'mixed'        some of each
--   'none'         at least one has neither: gross_margin NULL
--   'no_won_deals' nothing won is credited here: margin 0
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
        coalesce(sum(cost), 0)::decimal(38, 2) as cost,
        coalesce(sum(sessions), 0)::bigint as sessions,
        coalesce(sum(leads), 0)::bigint as leads,
        coalesce(sum(mqls), 0)::bigint as mqls,
        coalesce(sum(sqls), 0)::bigint as sqls,
        coalesce(sum(customers), 0)::bigint as customers,
        coalesce(sum(won_deals), 0)::double as won_deals,
        coalesce(sum(revenue), 0)::decimal(38, 2) as revenue,
        coalesce(sum(known_gross_margin), 0)::decimal(38, 2) as known_gross_margin,
        round(coalesce(sum(weighted_pipeline), 0), 2)::decimal(38, 2) as weighted_pipeline,
        coalesce(sum(won_deals_without_margin), 0) as won_deals_without_margin,
        coalesce(sum(won_deals_margin_from_line_items), 0) as won_deals_margin_from_line_items,
        coalesce(sum(won_deals_margin_from_rate), 0) as won_deals_margin_from_rate
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

margins as (
    select
        *,
        case
            when won_deals_without_margin > 0 then 'none'
            when won_deals_margin_from_line_items > 0 and won_deals_margin_from_rate > 0 then 'mixed'
            when won_deals_margin_from_line_items > 0 then 'line_items'
            when won_deals_margin_from_rate > 0 then 'margin_rate'
            else 'no_won_deals'
        end as margin_source
    from totals
),

final as (
    select
        grain, attribution_model, month, channel, source, medium, campaign,
        cost, sessions, leads, mqls, sqls, customers, won_deals, revenue,
        case when margin_source <> 'none' then known_gross_margin end::decimal(38, 2) as gross_margin,
        margin_source,
        weighted_pipeline,
        roi_on_revenue(revenue, cost) as roi_on_revenue,
        roi_on_margin(known_gross_margin, cost, margin_source) as roi_on_margin,
        roi_roas(revenue, cost) as roas,
        roi_cost_per_euro_of_revenue(cost, revenue) as cost_per_euro_of_revenue,
        roi_cost_per_lead(cost, leads) as cost_per_lead,
        roi_cac(cost, customers) as cac,
        roi_lead_to_customer_rate(customers, leads) as lead_to_customer_rate,
        roi_lead_value(customers, leads, known_gross_margin, won_deals, margin_source) as lead_value,
        cost = 0 as cost_is_zero
    from margins
)

select * from final
