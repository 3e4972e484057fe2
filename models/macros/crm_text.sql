-- A ratio as the CRM properties take it (crm_property_values): text with 4 decimals, half away from zero.
create or replace macro roi_ratio_text(ratio) as (
    cast(cast(round(ratio, 4) as decimal(38, 4)) as varchar)
);
