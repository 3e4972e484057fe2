-- ROI by portal and for the whole group (portal 'all'), at the three grains, in the group currency.
-- Portal rows are int_group_roi_portals; group rows sum them per model, month and dimensions. Ratios are computed
-- from the (converted) sums with the rules of the portal marts (models/sql/intermediate/int_roi_rollup.sql):
--   roi_on_revenue = (revenue - cost) / cost       roi_on_margin = (gross_margin - cost) / cost
--   roas = revenue / cost                          cost_per_euro_of_revenue = cost / revenue
--   cost_per_lead = cost / leads                   cac = cost / customers      lead_to_customer_rate = customers / leads
--   lead_value = lead_to_customer_rate x gross_margin / won_deals
-- A margin stays unknown when one portal's is: the group's gross_margin is NULL ('none') as soon as one portal row
-- in it is. margin_source: 'none' if any is, else the one source of the portals that won deals, else 'mixed'.
with portal_rows as (
    select * from int_group_roi_portals
),

group_rows as (
    select
        'all' as portal,
        grain, attribution_model, month, channel, source, medium, campaign,
        sum(cost)::decimal(38, 2) as cost,
        sum(sessions)::bigint as sessions,
        sum(leads)::bigint as leads,
        sum(mqls)::bigint as mqls,
        sum(sqls)::bigint as sqls,
        sum(customers)::bigint as customers,
        sum(won_deals)::double as won_deals,
        sum(revenue)::decimal(38, 2) as revenue,
        case when count(*) filter (where margin_source = 'none') = 0 then sum(gross_margin) end::decimal(38, 2)
            as gross_margin,
        case
            when count(*) filter (where margin_source = 'none') > 0 then 'none'
            when count(distinct margin_source) filter (where margin_source <> 'no_won_deals') = 0 then 'no_won_deals'
            when count(distinct margin_source) filter (where margin_source <> 'no_won_deals') = 1
                then max(margin_source) filter (where margin_source <> 'no_won_deals')
            else 'mixed'
        end as margin_source,
        sum(weighted_pipeline)::decimal(38, 2) as weighted_pipeline
    from portal_rows
    group by all
),

rows as (
    select portal, grain, attribution_model, month, channel, source, medium, campaign, cost, sessions, leads,
        mqls, sqls, customers, won_deals, revenue, gross_margin, margin_source, weighted_pipeline
    from portal_rows
    union all by name
    select * from group_rows
),

final as (
    select
        portal, grain, attribution_model, month, channel, source, medium, campaign,
        cost::decimal(38, 2) as cost, sessions, leads, mqls, sqls, customers, won_deals,
        revenue::decimal(38, 2) as revenue,
        gross_margin::decimal(38, 2) as gross_margin,
        margin_source,
        weighted_pipeline::decimal(38, 2) as weighted_pipeline,
        roi_on_revenue(revenue, cost) as roi_on_revenue,
        roi_on_margin(gross_margin, cost, margin_source) as roi_on_margin,
        roi_roas(revenue, cost) as roas,
        roi_cost_per_euro_of_revenue(cost, revenue) as cost_per_euro_of_revenue,
        roi_cost_per_lead(cost, leads) as cost_per_lead,
        roi_cac(cost, customers) as cac,
        roi_lead_to_customer_rate(customers, leads) as lead_to_customer_rate,
        roi_lead_value(customers, leads, gross_margin, won_deals, margin_source) as lead_value,
        cost = 0 as cost_is_zero
    from rows
)

select * from final
