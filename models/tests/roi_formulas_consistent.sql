-- The ratios agree with their definitions (to their stored precision), and zero cost never yields a ratio.
with all_marts as (
    select 'roi_by_channel' as mart, attribution_model, month, channel as dimension, cost, won_revenue,
        gross_margin, leads, customers, roi, roas, cost_per_lead, cac, cost_is_zero
    from roi_by_channel
    union all
    select 'roi_by_source', attribution_model, month, channel || '/' || coalesce(source, ''), cost, won_revenue,
        gross_margin, leads, customers, roi, roas, cost_per_lead, cac, cost_is_zero
    from roi_by_source
    union all
    select 'roi_by_campaign', attribution_model, month,
        channel || '/' || coalesce(source, '') || '/' || coalesce(medium, '') || '/' || coalesce(campaign, ''),
        cost, won_revenue, gross_margin, leads, customers, roi, roas, cost_per_lead, cac, cost_is_zero
    from roi_by_campaign
)

select *
from all_marts
where (cost_is_zero and (roi is not null or roas is not null or cost_per_lead is not null or cac is not null))
   or cost_is_zero <> (cost = 0)
   or (cost <> 0 and abs(roi - (gross_margin - cost) / cost) > 0.000001)
   or (cost <> 0 and abs(roas - won_revenue / cost) > 0.000001)
   or (cost <> 0 and leads > 0 and abs(cost_per_lead - cost / leads) > 0.0051)
   or (cost <> 0 and customers > 0 and abs(cac - cost / customers) > 0.0051)
