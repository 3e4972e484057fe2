-- The ROI formulas, written once for the portal's rollup (int_roi_rollup) and the group's (int_group_roi_rollup);
-- docs/models.md states them. Rows without cost get no ratio on cost (their cost_is_zero column says why); margin
-- ratios are NULL when the row has no margin source, never guessed. Needs money.sql (files run in name order).

-- "ROI sur CA": (revenue - cost) / cost
create or replace macro roi_on_revenue(revenue, cost) as (
    case when cost <> 0 then roi_div_ratio(revenue - cost, cost) end
);

-- "ROI sur marge": (gross margin - cost) / cost
create or replace macro roi_on_margin(gross_margin, cost, margin_source) as (
    case when cost <> 0 and margin_source <> 'none' then roi_div_ratio(gross_margin - cost, cost) end
);

-- "CA / Investissement"
create or replace macro roi_roas(revenue, cost) as (
    case when cost <> 0 then roi_div_ratio(revenue, cost) end
);

-- "Coût pour 1 € de CA"
create or replace macro roi_cost_per_euro_of_revenue(cost, revenue) as (
    case when cost <> 0 and revenue <> 0 then roi_div_ratio(cost, revenue) end
);

create or replace macro roi_cost_per_lead(cost, leads) as (
    case when cost <> 0 then roi_div_money(cost, leads) end
);

-- customer acquisition cost
create or replace macro roi_cac(cost, customers) as (
    case when cost <> 0 then roi_div_money(cost, customers) end
);

create or replace macro roi_lead_to_customer_rate(customers, leads) as (
    case when leads > 0 then roi_div_ratio(customers, leads) end
);

-- what a lead is worth in margin: the lead-to-customer rate times the margin of an average won deal
create or replace macro roi_lead_value(customers, leads, gross_margin, won_deals, margin_source) as (
    case
        when leads > 0 and won_deals > 0 and margin_source <> 'none'
            then round(customers / leads * gross_margin / won_deals, 2)
    end::decimal(38, 2)
);
