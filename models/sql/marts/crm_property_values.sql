-- Desired values of the pipeline's HubSpot properties, one row per (object_type, record_id, property), as the
-- strings HubSpot takes: amounts with 2 decimals, ratios (ROI, shown as a percentage) and ROAS with 4 decimals.
-- Both ROI bases are published side by side (roi_on_revenue and roi_on_margin of the channel and campaign rows of
-- the ROI marts); an unknown margin gives no row (nothing sent, an old value is cleared).
-- connectors/hubspot_publish.py diffs this against ops.published_values and sends only what changed.
--
-- Rules that keep the publish converging (docs/publish.md):
--   * values depend only on the marts, never on lastmodifieddate or on our own roi_* properties, which HubSpot
--     moves/holds after each publish;
--   * roi_computed_at is NOT produced here: the publisher stamps it only on records whose other values change;
--   * an undefined metric (no cost, no leads) gives no row rather than a NULL, so nothing is sent for it.
-- The attribution model is cfg_params.publish_model (config [models] publish_model), default 'markov'.
with params as (
    select coalesce(max(value) filter (where name = 'publish_model'), 'markov') as publish_model
    from cfg_params
),

credits as (
    select credits.*
    from attribution_credits as credits
    join params on credits.attribution_model = params.publish_model
),

channel_roi as (
    select channel, roi_on_revenue, roi_on_margin, roas, cost_per_euro_of_revenue, cost_per_lead
    from roi_by_channel
    join params on roi_by_channel.attribution_model = params.publish_model
    where roi_by_channel.month is null
),

campaign_roi as (
    select channel, source, medium, campaign, roi_on_revenue, roi_on_margin, roas, cost_per_euro_of_revenue,
        cost_per_lead
    from roi_by_campaign
    join params on roi_by_campaign.attribution_model = params.publish_model
    where roi_by_campaign.month is null
),

-- Contacts: the first touchpoint. On a tie (HubSpot stamps the original source, the latest source and the
-- offline answer with the same time) the latest-source touch and unclassified touches come last, then the id,
-- so the pick never flips between runs.
contact_first_touch as (
    select contact_id, channel, source, medium, campaign
    from int_touchpoints
    where contact_id is not null
    qualify row_number() over (
        partition by contact_id
        order by touchpoint_at, touch_type = 'hubspot_latest_source', channel = 'unassigned', touchpoint_id
    ) = 1
),

contact_money as (
    -- a contact's margin is unknown (no value sent) when one of its won deals has no margin information
    select
        contact_id,
        sum(revenue) as revenue,
        case when bool_or(gross_margin is null) then null else sum(gross_margin) end as gross_margin
    from credits
    where contact_id is not null
    group by contact_id
),

contact_values as (
    select
        contact_first_touch.contact_id,
        contact_first_touch.channel,
        contact_first_touch.source,
        contact_first_touch.campaign,
        contact_money.revenue,
        contact_money.gross_margin,
        channel_roi.roi_on_revenue as channel_roi_on_revenue,
        channel_roi.roi_on_margin as channel_roi_on_margin,
        channel_roi.cost_per_lead as channel_cost_per_lead,
        campaign_roi.roi_on_revenue as campaign_roi_on_revenue,
        campaign_roi.roi_on_margin as campaign_roi_on_margin,
        campaign_roi.cost_per_lead as campaign_cost_per_lead
    from contact_first_touch
    left join contact_money on contact_money.contact_id = contact_first_touch.contact_id
    left join channel_roi on channel_roi.channel = contact_first_touch.channel
    left join campaign_roi
        on campaign_roi.channel = contact_first_touch.channel
        and campaign_roi.source is not distinct from contact_first_touch.source
        and campaign_roi.medium is not distinct from contact_first_touch.medium
        and campaign_roi.campaign = contact_first_touch.campaign
),

-- Deals: the channel with the largest credit, and the campaign with the largest credit among campaign touches.
deal_channel as (
    select deal_id, channel
    from credits
    group by deal_id, channel
    qualify row_number() over (
        partition by deal_id order by sum(credit) desc, min(touchpoint_at) nulls last, channel
    ) = 1
),

deal_campaign as (
    select deal_id, channel, source, medium, campaign
    from credits
    where campaign is not null
    group by deal_id, channel, source, medium, campaign
    qualify row_number() over (
        partition by deal_id
        order by sum(credit) desc, min(touchpoint_at) nulls last, channel, source, medium, campaign
    ) = 1
),

deal_values as (
    select
        deals.deal_id,
        deals.gross_margin,
        deals.margin_source,
        deals.is_won,
        deal_channel.channel,
        deal_campaign.campaign,
        channel_roi.roi_on_revenue as channel_roi_on_revenue,
        channel_roi.roi_on_margin as channel_roi_on_margin,
        channel_roi.roas as channel_roas,
        channel_roi.cost_per_euro_of_revenue as channel_cost_per_euro_of_revenue,
        campaign_roi.roi_on_revenue as campaign_roi_on_revenue,
        campaign_roi.roi_on_margin as campaign_roi_on_margin,
        campaign_roi.roas as campaign_roas,
        campaign_roi.cost_per_euro_of_revenue as campaign_cost_per_euro_of_revenue,
        params.publish_model
    from int_deals as deals
    cross join params
    join deal_channel on deal_channel.deal_id = deals.deal_id
    left join deal_campaign on deal_campaign.deal_id = deals.deal_id
    left join channel_roi on channel_roi.channel = deal_channel.channel
    left join campaign_roi
        on campaign_roi.channel = deal_campaign.channel
        and campaign_roi.source is not distinct from deal_campaign.source
        and campaign_roi.medium is not distinct from deal_campaign.medium
        and campaign_roi.campaign = deal_campaign.campaign
),

contact_rows as (
    select
        'contacts' as object_type,
        contact_id as record_id,
        property,
        value
    from contact_values
    cross join lateral (
        values
            ('roi_acquisition_channel', channel),
            ('roi_acquisition_source', source),
            ('roi_acquisition_campaign', campaign),
            ('roi_attributed_revenue', cast(cast(round(revenue, 2) as decimal(38, 2)) as varchar)),
            ('roi_attributed_margin', cast(cast(round(gross_margin, 2) as decimal(38, 2)) as varchar)),
            ('roi_channel_roi_on_revenue', roi_ratio_text(channel_roi_on_revenue)),
            ('roi_channel_roi_on_margin', roi_ratio_text(channel_roi_on_margin)),
            ('roi_channel_cost_per_lead', cast(cast(round(channel_cost_per_lead, 2) as decimal(38, 2)) as varchar)),
            ('roi_campaign_roi_on_revenue', roi_ratio_text(campaign_roi_on_revenue)),
            ('roi_campaign_roi_on_margin', roi_ratio_text(campaign_roi_on_margin)),
            ('roi_campaign_cost_per_lead', cast(cast(round(campaign_cost_per_lead, 2) as decimal(38, 2)) as varchar))
    ) as pairs(property, value)
),

deal_rows as (
    select
        'deals' as object_type,
        deal_id as record_id,
        property,
        value
    from deal_values
    cross join lateral (
        values
            ('roi_attributed_channel', channel),
            ('roi_attributed_campaign', campaign),
            ('roi_channel_roi_on_revenue', roi_ratio_text(channel_roi_on_revenue)),
            ('roi_channel_roi_on_margin', roi_ratio_text(channel_roi_on_margin)),
            ('roi_channel_roas', roi_ratio_text(channel_roas)),
            ('roi_channel_cost_per_euro_of_revenue', roi_ratio_text(channel_cost_per_euro_of_revenue)),
            ('roi_campaign_roi_on_revenue', roi_ratio_text(campaign_roi_on_revenue)),
            ('roi_campaign_roi_on_margin', roi_ratio_text(campaign_roi_on_margin)),
            ('roi_campaign_roas', roi_ratio_text(campaign_roas)),
            ('roi_campaign_cost_per_euro_of_revenue', roi_ratio_text(campaign_cost_per_euro_of_revenue)),
            -- margin is only known once the deal is won (int_deals gives 0 before)
            ('roi_gross_margin', case when is_won then cast(cast(round(gross_margin, 2) as decimal(38, 2)) as varchar) end),
            ('roi_margin_source', case when is_won then margin_source end),
            ('roi_attribution_model', publish_model)
    ) as pairs(property, value)
),

final as (
    select object_type, cast(record_id as bigint) as record_id, property, value
    from contact_rows
    where value is not null
    union all
    select object_type, cast(record_id as bigint) as record_id, property, value
    from deal_rows
    where value is not null
)

select * from final
