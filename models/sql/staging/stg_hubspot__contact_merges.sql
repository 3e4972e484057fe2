-- Every contact id that was merged away, with the id of the contact that holds it now. HubSpot's merge makes a
-- NEW record: both old ids point to it, and it lists every id merged into it in hs_merged_object_ids
-- (';'-separated). The extract marks each merged-away id with its survivor (merged_into_id, a marker row when
-- the id was never read itself); chains (a + b -> c, then c + d -> e) are followed to their end.
with recursive source as (
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
    where hs_merged_object_ids is not null and hs_merged_object_ids <> '' and merged_into_id is null
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

chains(merged_contact_id, surviving_contact_id, hops) as (
    select merged_contact_id, surviving_contact_id, 1
    from one_per_loser
    union all
    select chains.merged_contact_id, next_hop.surviving_contact_id, chains.hops + 1
    from chains
    join one_per_loser as next_hop on next_hop.merged_contact_id = chains.surviving_contact_id
    where chains.hops < 50
),

final as (
    select merged_contact_id, arg_max(surviving_contact_id, hops) as surviving_contact_id
    from chains
    group by merged_contact_id
)

select * from final
