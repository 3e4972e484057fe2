-- For a HubSpot object table of raw (id, merged_into_id, hs_merged_object_ids): every id merged away, with the id
-- of the record that holds it now. HubSpot's merge makes a NEW record: both old ids point to it, and it lists every
-- id merged into it in hs_merged_object_ids (';'-separated). The extract marks each merged-away id with its
-- survivor (merged_into_id, a marker row when the id was never read itself); chains (a + b -> c, then c + d -> e)
-- are followed to their end. Used by stg_hubspot__contact_merges and stg_hubspot__deal_merges.
create or replace macro roi_merge_survivors(records) as table (
    with recursive source as (
        select id, merged_into_id, hs_merged_object_ids
        from query_table(records)
    ),

    from_losers as (
        select id as merged_id, merged_into_id as surviving_id
        from source
        where merged_into_id is not null
    ),

    from_survivors as (
        select
            try_cast(trim(unnest(string_split(hs_merged_object_ids, ';'))) as bigint) as merged_id,
            id as surviving_id
        from source
        where hs_merged_object_ids is not null and hs_merged_object_ids <> '' and merged_into_id is null
    ),

    pairs as (
        select distinct merged_id, surviving_id
        from (select * from from_losers union all select * from from_survivors)
        where merged_id is not null and merged_id <> surviving_id
    ),

    one_per_loser as (
        select merged_id, max(surviving_id) as surviving_id
        from pairs
        group by merged_id
    ),

    chains(merged_id, surviving_id, hops) as (
        select merged_id, surviving_id, 1
        from one_per_loser
        union all
        select chains.merged_id, next_hop.surviving_id, chains.hops + 1
        from chains
        join one_per_loser as next_hop on next_hop.merged_id = chains.surviving_id
        where chains.hops < 50
    ),

    final as (
        select merged_id, arg_max(surviving_id, hops) as surviving_id
        from chains
        group by merged_id
    )

    select * from final
);
