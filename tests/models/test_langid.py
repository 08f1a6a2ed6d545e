from collapseguard.models.langid import FrequencyTables, LanguageId, lid_model_path


def test_lid_model_ships_offline_and_predicts_in_batches():
    assert lid_model_path().endswith("lid.176.ftz")
    lid = LanguageId()
    out = lid.predict(["The weather is lovely today and we are going out.",
                       "Der Hund schläft im Garten unter dem alten Baum.",
                       "x" * 500_000, "   "])
    assert [o[0] for o in out[:2]] == ["en", "de"]
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for _, s in out)


def test_frequency_tables_cover_known_languages_only():
    t = FrequencyTables()
    en = t.get("en")
    assert en["the"] > 1e-2 and t.get("en") is en
    assert t.get("xx") is None and t.get(None) is None
    common = t.common("en", 1e-6)
    assert "the" in common and "zyzzyva" not in common and t.common("xx", 1e-6) is None
