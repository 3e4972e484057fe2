-- Every deal id that was merged away, with the id of the deal that holds it now. HubSpot's merge makes a
-- NEW record: both old ids point to it, and it lists every id merged into it in hs_merged_object_ids
-- (';'-separated). The extract marks each merged-away id with its survivor (merged_into_id, a marker row when
-- the id was never read itself); chains (a + b -> c, then c + d -> e) are followed to their end.
with recursive source as (
    select * from raw.hubspot_deals
),

from_losers as (
    select id as merged_deal_id, merged_into_id as surviving_deal_id
    from source
    where merged_into_id is not null
),

from_survivors as (
    select
        try_cast(trim(unnest(string_split(hs_merged_object_ids, ';'))) as bigint) as merged_deal_id,
        id as surviving_deal_id
    from source
    where hs_merged_object_ids is not null and hs_merged_object_ids <> '' and merged_into_id is null
),

pairs as (
    select distinct merged_deal_id, surviving_deal_id
    from (select * from from_losers union all select * from from_survivors)
    where merged_deal_id is not null and merged_deal_id <> surviving_deal_id
),

one_per_loser as (
    select merged_deal_id, max(surviving_deal_id) as surviving_deal_id
    from pairs
    group by merged_deal_id
),

chains(merged_deal_id, surviving_deal_id, hops) as (
    select merged_deal_id, surviving_deal_id, 1
    from one_per_loser
    union all
    select chains.merged_deal_id, next_hop.surviving_deal_id, chains.hops + 1
    from chains
    join one_per_loser as next_hop on next_hop.merged_deal_id = chains.surviving_deal_id
    where chains.hops < 50
),

final as (
    select merged_deal_id, arg_max(surviving_deal_id, hops) as surviving_deal_id
    from chains
    group by merged_deal_id
)

select * from final
