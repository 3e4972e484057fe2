-- Every deal id that was merged away, with the id of the deal that holds it now (chains followed to their
-- end; see models/macros/merge_survivors.sql for HubSpot's merge semantics).
with survivors as (
    select * from roi_merge_survivors('raw.hubspot_deals')
),

final as (
    select merged_id as merged_deal_id, surviving_id as surviving_deal_id
    from survivors
)

select * from final
