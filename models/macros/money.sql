-- Exact division. DuckDB's decimal "/" returns DOUBLE, which loses cents above 2^53 cents (9 * 10^13 EUR) and
-- makes ratios approximate. roi_div_units divides scaled HUGEINTs instead and returns the quotient as a whole
-- number of 1/per_unit, rounded half away from zero. Inputs are widened to DECIMAL(38, 6) first (a DECIMAL(18, 2)
-- amount times 10^6 would overflow its own width): at most 6 decimals (ours have 0, 2 or 4), below 10^24 in
-- absolute value; money sums stay below 10^18 (amounts up to 10^12 EUR).
create or replace macro roi_div_units(num, den, per_unit) as (
    sign(num) * sign(den)
    * ((2 * abs((num::decimal(38, 6) * 1000000)::hugeint) * per_unit
        + abs((den::decimal(38, 6) * 1000000)::hugeint))
       // (2 * abs((den::decimal(38, 6) * 1000000)::hugeint)))
);

-- money, to the cent
create or replace macro roi_div_money(num, den) as (
    case
        when num is null or den is null or den = 0 then null
        else (roi_div_units(num, den, 100)::decimal(38, 0) * 0.01)::decimal(38, 2)
    end
);

-- ratios (ROI, ROAS, rates), to 6 decimals
create or replace macro roi_div_ratio(num, den) as (
    case
        when num is null or den is null or den = 0 then null
        else (roi_div_units(num, den, 1000000)::decimal(38, 0) * 0.000001)::decimal(38, 6)
    end
);
