-- Every contact id that was merged away, with the id of the contact that holds it now (chains followed to their
-- end; see models/macros/merge_survivors.sql for HubSpot's merge semantics).
with survivors as (
    select * from roi_merge_survivors('raw.hubspot_contacts')
),

final as (
    select merged_id as merged_contact_id, surviving_id as surviving_contact_id
    from survivors
)

select * from final
