-- The reject reason of an amount in a currency without an exchange rate for that month: the exact line to add.
create or replace macro roi_fx_rate_missing_reason(currency, month, home_currency, rates_file) as (
    'no exchange rate for ' || currency || ' in ' || strftime(month, '%Y-%m') || ': add the line '
    || currency || ' = "<' || home_currency || ' for 1 ' || currency || '>"'
    || ' under [models.fx_rates] in roi.toml'
    || case
        when rates_file is not null
            then ' (or the row ' || strftime(month, '%Y-%m') || ',' || currency || ',<rate> to '
                || rates_file || ')'
        else ''
    end
);
