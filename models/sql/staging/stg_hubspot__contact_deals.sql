-- Contact <-> deal associations, one row per pair.
with source as (
    select * from raw.hubspot_contact_deals
),

final as (
    select distinct contact_id, deal_id
    from source
    where contact_id is not null and deal_id is not null
)

select * from final
