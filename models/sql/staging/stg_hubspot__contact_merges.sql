-- Every contact id that was merged away, with the id of the contact that survived the merge. HubSpot reports a
-- merge twice: on the survivor (hs_merged_object_ids, ';'-separated) and, once the connector saw it, on the loser
-- (merged_into_id). Chains (a into b, b into c) are followed up to three levels.
with source as (
    select * from raw.hubspot_contacts
),

from_losers as (
    select id as merged_contact_id, merged_into_id as surviving_contact_id
    from source
    where merged_into_id is not null
),

from_survivors as (
    select
        try_cast(trim(unnest(string_split(hs_merged_object_ids, ';'))) as bigint) as merged_contact_id,
        id as surviving_contact_id
    from source
    where hs_merged_object_ids is not null and hs_merged_object_ids <> ''
),

pairs as (
    select distinct merged_contact_id, surviving_contact_id
    from (select * from from_losers union all select * from from_survivors)
    where merged_contact_id is not null and merged_contact_id <> surviving_contact_id
),

one_per_loser as (
    select merged_contact_id, max(surviving_contact_id) as surviving_contact_id
    from pairs
    group by merged_contact_id
),

final as (
    select
        first_hop.merged_contact_id,
        coalesce(third_hop.surviving_contact_id, second_hop.surviving_contact_id, first_hop.surviving_contact_id)
            as surviving_contact_id
    from one_per_loser as first_hop
    left join one_per_loser as second_hop on second_hop.merged_contact_id = first_hop.surviving_contact_id
    left join one_per_loser as third_hop on third_hop.merged_contact_id = second_hop.surviving_contact_id
)

select * from final
