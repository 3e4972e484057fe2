-- The ratios are exactly their formulas (exact division, 6 decimals, half away from zero), zero cost never yields
-- a ratio, and an unknown margin (margin_source 'none') gives a NULL gross_margin and roi_on_margin, never a guess.
with all_marts as (
    select 'roi_by_channel' as mart, attribution_model, month, channel as dimension, cost, revenue,
        gross_margin, margin_source, leads, customers, roi_on_revenue, roi_on_margin, roas,
        cost_per_euro_of_revenue, cost_per_lead, cac, cost_is_zero
    from roi_by_channel
    union all
    select 'roi_by_source', attribution_model, month, channel || '/' || coalesce(source, ''), cost, revenue,
        gross_margin, margin_source, leads, customers, roi_on_revenue, roi_on_margin, roas,
        cost_per_euro_of_revenue, cost_per_lead, cac, cost_is_zero
    from roi_by_source
    union all
    select 'roi_by_campaign', attribution_model, month,
        channel || '/' || coalesce(source, '') || '/' || coalesce(medium, '') || '/' || coalesce(campaign, ''),
        cost, revenue, gross_margin, margin_source, leads, customers, roi_on_revenue, roi_on_margin, roas,
        cost_per_euro_of_revenue, cost_per_lead, cac, cost_is_zero
    from roi_by_campaign
)

select *
from all_marts
where cost_is_zero is distinct from (cost = 0)
   or (gross_margin is null) <> (margin_source = 'none')
   or (cost_is_zero and (roi_on_revenue is not null or roi_on_margin is not null or roas is not null
       or cost_per_euro_of_revenue is not null or cost_per_lead is not null or cac is not null))
   or (not cost_is_zero and roi_on_revenue is distinct from roi_div_ratio(revenue - cost, cost))
   or (not cost_is_zero and roi_on_margin is distinct from roi_div_ratio(gross_margin - cost, cost))
   or (not cost_is_zero and roas is distinct from roi_div_ratio(revenue, cost))
   or (not cost_is_zero and cost_per_euro_of_revenue is distinct from roi_div_ratio(cost, nullif(revenue, 0)))
   or (not cost_is_zero and cost_per_lead is distinct from roi_div_money(cost, nullif(leads, 0)))
   or (not cost_is_zero and cac is distinct from roi_div_money(cost, nullif(customers, 0)))
   -- and the ratios agree with plain (DOUBLE) division to their precision, a check on roi_div_ratio itself
   or (not cost_is_zero
       and abs(roi_on_revenue - (revenue - cost) / cost) > 0.0000005 + abs(roi_on_revenue) * 1e-14)
   or (not cost_is_zero and abs(roas - revenue / cost) > 0.0000005 + abs(roas) * 1e-14)
